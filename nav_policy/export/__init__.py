"""ONNX export (with metadata and parity check) and the shared ONNX runtime."""
