"""Fixtures for the generator: tiny ONNX models built in the test (no torch needed)."""
