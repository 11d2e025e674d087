"""TEM virus patches (Matuszewski & Sintorn, 2021): annotations, Lanczos-3 rescaling, patch
cropping with mirror padding, and class balancing by the 8 symmetries of the square."""
