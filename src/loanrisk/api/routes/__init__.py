"""One router per concern: applications, score, admin, health."""
