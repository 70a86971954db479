"""The interactive web demo (`gancompress demo`): draw, and see generators side by side, live.

    runners.py   what the page runs: the models of a compression run folder (or model files),
                 one inference session per model on the fastest available path (OpenVINO when
                 gancompress.deploy.openvino is present, else onnxruntime through a verified
                 ONNX export cached beside the run, else PyTorch), label-map inputs, the
                 run's Pareto front and sub-network extraction on demand
    server.py    the Starlette app (JSON + raw-image API, static page, hardening) and uvicorn
    static/      the page: plain HTML, CSS and JavaScript (no build step, no CDN, no web fonts)

Needs the optional extra: pip install gancompress[demo].
"""
