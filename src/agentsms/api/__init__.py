"""HTTP only: routers, request/response schemas, auth, error handlers."""
