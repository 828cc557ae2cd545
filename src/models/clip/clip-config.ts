// transformers CLIPTextConfig / CLIPVisionConfig (config.json field names).
export interface ClipEncoderConfig {
  hidden_size: number;
  intermediate_size: number;
  num_attention_heads: number;
  num_hidden_layers: number;
  layer_norm_eps: number;
  hidden_act: 'quick_gelu' | 'gelu';
  projection_dim?: number;
}

export interface ClipTextConfig extends ClipEncoderConfig {
  vocab_size: number;
  max_position_embeddings: number;
  bos_token_id?: number;
  eos_token_id?: number;
  pad_token_id?: number;
}

export interface ClipVisionConfig extends ClipEncoderConfig {
  image_size: number;
  patch_size: number;
  num_channels: number;
}
