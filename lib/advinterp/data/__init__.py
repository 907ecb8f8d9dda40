"""Datasets (the embedded MNIST sample, MNIST, CIFAR-10, any ImageFolder tree) and probe sets."""
