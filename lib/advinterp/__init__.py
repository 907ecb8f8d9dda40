"""advinterp: interpreting deep networks through adversarial examples.

The library behind the executable book. Chapters import from here; every computation a chapter
shows lives in one of these subpackages and is unit-tested. The folders are layers, listed from
the bottom up; a module imports only from its own layer and the ones above it in this table
(``tests/unit/test_layers.py`` reads every import, lazy ones included, and enforces it):

==============  ====================================================================================
layer           concepts
==============  ====================================================================================
``core``        paths, parameter declarations (:mod:`~advinterp.core.params`) and their checks,
                devices and seeds, progress bars, the content-addressed cache, private helpers
                (eval mode, batching)
``data``        datasets (embedded MNIST sample, MNIST, CIFAR-10, ImageFolder), probe sets
``models``      architectures with their input normalisation, layer recording, predict / accuracy
``attacks``     FGSM, FGSM-RS, ILLC, PGD and the ensemble attack behind one registry; adversarial
                datasets, cached
``training``    the one training loop, objectives (standard, adversarial + consistent loss,
                sensitivity regulariser), the book's recipes
``interpret``   top-K mining, patches, class affinity, neuron and representation consistency,
                dissection tables, prediction difference and tracing, conductance, mutation,
                wrong-prediction detection, attribution metrics
``report``      results files and glued numbers, figures, the neuron browser, recorded runs
``sweeps``      sweeps of chapters: the spec, one run's folder and resume, the engines (local, Ray)
                in one table, the collected table
``studies``     one module per chapter study: its parameters, setup, run over seeds, and the
                metrics whose names it owns
==============  ====================================================================================

Entry points on top: ``python -m advinterp.sweep`` and ``python -m advinterp.bench``.
"""

from __future__ import annotations

__version__ = "0.1.0"
