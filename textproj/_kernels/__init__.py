"""numba kernels: plain arrays in, plain arrays out; the Python layer owns errors and objects."""
