"""Human feedback: annotation queues for reviewers, and rated traces exported as fine-tuning
data versions (chat JSONL for supervised tuning, chosen/rejected pairs for preference tuning)."""
