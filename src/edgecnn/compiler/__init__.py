"""The compiler: Graph → passes → static memory plan → C (model.c + the C runtime) → builds.

- :mod:`.passes`   lowering to an op list; fold batchnorm/scale_bias, fuse activations, drop dropout
- :mod:`.kernels`  which kernel each op runs (reference or fast; the one place that decides)
- :mod:`.plan`     the arena: offsets, ELL borders, in-place ops, kernel scratch
- :mod:`.emit`     model.c / model.h: weights blob, kernel calls (text in :mod:`.templates`)
- :mod:`.targets`  the compile targets (compiler, flags, EC_NB)
- :mod:`.build`    writing the output directory and running the compiler
- :mod:`.api`      ``edgecnn.compile(model)`` → CompiledModel (ctypes), with a build cache
- :mod:`.packing`  weight layouts of the fast kernels
"""
