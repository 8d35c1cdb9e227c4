"""``livereader-bench`` (:mod:`.cli`) and its real-footage groups (:mod:`.footage`). The reader imports none of
it."""
