"""The service's routes, one router per contract: PaddleHub Serving, REST v1, pages, live socket, metrics."""
