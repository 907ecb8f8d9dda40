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
``experiment``            the shared setting of chapters 1-5 for one seed
``neurons``               streaming top-K mining of every neuron of a layer
``patches``               the image region that drives a conv neuron
``affinity``              class-affinity matrices (identity, CIFAR-10 and ImageNet WordNet)
``consistency``           neuron consistency p^T A p and top-K agreement
``representation``        representation consistency (CS, Pearson r, LC)
``dissection``            per-neuron and per-layer tables over seeds and attacks
``widgets``               the interactive neuron browser
``consistent_loss``       adversarial training objectives with Dong et al.'s consistent loss
``robust_training``       chapter 4's study: standard vs adversarial vs consistent-loss models
``influence``             prediction difference of every neuron of a layer (batched)
``tracing``               concepts, explanations, the agreement-score adversarial detector
``conductance``           layer conductance (right-end rule, as Wu et al.)
``mutation``              model mutants (NAI, GF) and the label change rate
``error_detection``       the wrong-prediction detector, stacking and selective metrics
``error_study``           chapter 6's pipeline for one seed
``sensitivity``           the neural-activation-sensitivity regulariser (a loss hook)
``interpretability``      attribution maps (Captum) and their metrics
``comparison``            chapter 7's study of interpretability across training methods
``side_by_side``          chapter 8's table of every method, read from a sweep
``sweep``                 papermill sweeps over parameter grids (resumable) into one table
``bench``                 performance benchmarks of the hot paths
``evaluation``            accuracy and attack success rates
``params``                each chapter's parameters and their validation
``results``               results JSON and glued numbers
``plotting``              figures shared by chapters
``progress``              progress bars (off in book builds)
========================  ==============================================================
"""

from __future__ import annotations

__version__ = "0.1.0"
