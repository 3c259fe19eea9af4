"""The built-in ASR: espeak-ng speech -> phone-line augmentation -> CTC model -> sherpa-onnx bundle."""
