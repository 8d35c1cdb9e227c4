"""Decoding a grid: the networks (:mod:`.model`), loading and running model files (:mod:`.reader`), the two
decoders (:mod:`.decoders`) with their verification (six-digit: :mod:`.verify`; codeword bits and Reed-Solomon:
:mod:`.codeword`), the evidence both measure (:mod:`.evidence`) and payload parsing (:mod:`.payload`)."""
