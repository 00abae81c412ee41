"""Training the demo LoKiFormer: knowledge world, tokenizer, trainer, field training, evaluation."""
