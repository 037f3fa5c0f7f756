"""The prompt registry: versioned text and chat prompts with labels, rendered in a sandbox."""
