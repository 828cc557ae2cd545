// The samplers Likeness offers, listed once. Everything else — the sampler type, the pack
// manifest's check, the concept file's check, the UI's menu and the A1111 metadata — derives
// from this list, so adding a sampler is one line here plus its scheduler.

export const SAMPLERS = ['ddim', 'euler', 'dpmpp-2m'] as const;

export type SamplerName = (typeof SAMPLERS)[number];

/**
 * How each sampler is named, in the app's menu and in A1111's `parameters` text alike: the
 * names A1111's sampler menu uses, so people and other tools recognise them.
 */
export const SAMPLER_LABELS: Readonly<Record<SamplerName, string>> = {
  ddim: 'DDIM',
  euler: 'Euler',
  'dpmpp-2m': 'DPM++ 2M',
};

export function isSamplerName(x: unknown): x is SamplerName {
  return typeof x === 'string' && (SAMPLERS as readonly string[]).includes(x);
}
