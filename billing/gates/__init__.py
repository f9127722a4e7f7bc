"""Request gates: lifecycle -> billing -> protection, in front of every tenant request."""
