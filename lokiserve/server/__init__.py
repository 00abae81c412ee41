"""``lokiserve serve``: vLLM's OpenAI server plus the memory admin API, sharing one engine."""
