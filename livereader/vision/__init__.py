"""Vision stages: finder patterns and located codes (:mod:`.finder`), the 21x21 grid sampled from a located code
(:mod:`.grid`) and deblurred grids of blurred codes (:mod:`.deblur`)."""
