# Optional feature profiles: each imported only when the integrator enables it.
