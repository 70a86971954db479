"""Metrics: cost (MACs, params, latency), FID/KID, segmentation mIoU."""
