"""Singer tap for ContactBased."""
