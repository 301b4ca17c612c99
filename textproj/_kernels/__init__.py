"""numba kernels: plain arrays in, plain arrays out. The Python layer above them owns errors and objects."""
