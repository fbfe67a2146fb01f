"""The taskiq side: a broker factory and thin tasks that call into exports/."""
