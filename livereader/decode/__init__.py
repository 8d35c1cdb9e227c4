"""Decoding a grid: the networks (:mod:`.model`), loading and running model files (:mod:`.reader`), six-digit
verification (:mod:`.verify`), codeword bits and Reed-Solomon (:mod:`.numeric`) and payload parsing
(:mod:`.payload`)."""
