"""The REST API: views.py adapts HTTP to chat.services; errors.py and pagination.py serve it."""
