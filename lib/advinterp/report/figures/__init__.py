"""The book's figures, one module per family. Every figure has axis labels with units and is
captioned in the chapter (myst-nb cell metadata), so these modules draw and label but do not caption.

* :mod:`~advinterp.report.figures.style` - the book's style, colours and panel grids;
* :mod:`~advinterp.report.figures.images` - one image on an axis: tensor to picture, patch masks,
  choosing a varied sample;
* :mod:`~advinterp.report.figures.galleries` - grids of images: adversarial examples, neurons' top
  images, explanations, attribution maps;
* :mod:`~advinterp.report.figures.budget` - what an attack achieves as its budget eps grows;
* :mod:`~advinterp.report.figures.tradeoffs` - what a training choice buys and costs: accuracy per
  epoch and against the consistency weight lambda;
* :mod:`~advinterp.report.figures.neurons` - distributions over neurons and channels;
* :mod:`~advinterp.report.figures.detection` - detectors of adversarial inputs and wrong
  predictions: score distributions, ROC and coverage curves.

Intervals and verdicts are drawn by :mod:`advinterp.report.forest`.
"""
