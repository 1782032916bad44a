"""Latents → pictures.

Modules
- ``model``: the generator's ``meta.json`` (``load_model``, anchors, axes, native size).
- ``generator``: the network itself in PyTorch (training and the torch backend).
- ``decoder``: ``FrameDecoder`` on ONNX Runtime (CUDA when it works, else CPU) or torch.
- ``postfx``: the post-FX chain, pure functions over uint8 frames.
"""
