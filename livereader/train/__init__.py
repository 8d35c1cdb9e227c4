"""Training and evaluation of the models (``livereader-train``, ``python -m livereader.train``): grids made with
``qrcode`` (:mod:`.data`), augmentation (:mod:`.augment`), evaluation (:mod:`.evaluate`). The reader imports
none of it."""
