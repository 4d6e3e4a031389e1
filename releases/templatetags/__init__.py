"""Template filters of the admin's release pages."""
