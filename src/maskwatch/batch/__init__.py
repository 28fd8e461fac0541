"""Work over many inputs: expanding sources, running the detector over them, writing results, drawing."""
