-- Settings of the learning loop (rows of heaters_db_settings, which tables/heaters_db_settings.sql
-- creates): the shape of the heads the train_head jobs fit. Re-runnable: existing values are kept.
INSERT INTO heaters_db_settings (name, value, description) VALUES
    ('head_output_dim', '256', 'Output dimension of newly trained projection heads (128, 256 or 512 are typical).'),
    ('head_hidden_dim', '0', 'Hidden width of the residual MLP of newly trained heads; 0 means 8 x head_output_dim.'),
    ('head_max_epochs', '200', 'Most epochs of one training run (early stopping on the holdout split usually ends it sooner).')
ON CONFLICT (name) DO NOTHING;
