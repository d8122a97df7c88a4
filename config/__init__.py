"""Project configuration: settings per environment, the URL conf that mounts every area, WSGI/ASGI, embedded Redis."""
