"""advinterp: interpreting deep networks through adversarial examples.

The library behind the executable book. Chapters import from here; every computation a
chapter shows lives in one of these modules and is unit-tested:

========================  ==============================================================
module                    concept
========================  ==============================================================
``paths``                 where data, caches and results live
``validation``            ``ValueError`` checks that name the parameter, value and range
``devices``               device selection and seeding
``data``                  datasets (embedded MNIST sample, MNIST, CIFAR-10, ImageFolder)
``models``                architectures with normalisation inside, named layers
``activations``           reading (and editing) any named layer without changing the model
``attacks``               FGSM, ILLC, PGD and the ensemble-optimisation attack
``cache``                 content-addressed, atomic, verified storage of tensors
``objectives``            training losses as hooks of the one training loop
``training``              the training loop: cached, resumable, with progress bars
``zoo``                   the book's standard training recipes (one place, all chapters)
``advdata``               adversarial datasets, cached and shared by chapters
``evaluation``            accuracy and attack success rates
``params``                each chapter's parameters and their validation
``results``               results JSON and glued numbers
``plotting``              figures shared by chapters
``progress``              progress bars (off in book builds)
========================  ==============================================================
"""

from __future__ import annotations

__version__ = "0.1.0"
