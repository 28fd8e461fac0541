"""The core: the result type, the detector, geometry and image reading; no command line, files of results or HTTP."""
