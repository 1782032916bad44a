"""Dataset, GAN training and ONNX export for stratum's generator (needs the train extra)."""
