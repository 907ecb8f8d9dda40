"""The one training loop (cached, resumable), its objectives (standard, adversarial with the
consistent loss, sensitivity-regularised) and the book's recipes."""
