"""Request and response models, per microversion."""
