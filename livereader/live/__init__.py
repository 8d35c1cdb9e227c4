"""Live sources and what follows a frame: capture (:mod:`.capture`), a stream's schedule (:mod:`.stream`),
tracking (:mod:`.track`), temporal fusion (:mod:`.fuse`), drawing (:mod:`.overlay`) and camera calibration
(:mod:`.calibrate`)."""
