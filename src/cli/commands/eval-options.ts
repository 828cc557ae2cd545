// `likeness eval`'s options, declared once: parsing (../args.ts) and --help (../main.ts) both
// read them.
import { DEFAULTS } from '../../domain/defaults.ts';
import { SAMPLERS } from '../../domain/samplers.ts';

export const EVAL_OPTIONS = {
  concepts: { type: 'string', value: '<folder>', required: true, help: 'A folder of single photos, one concept each.' },
  prompts: {
    type: 'string',
    value: '<file>',
    required: true,
    help: 'One prompt per line with the placeholder; # starts a comment.',
  },
  pack: {
    type: 'string',
    value: '<dir>',
    help: 'Model pack with a tuning encoder.',
    defaultHelp: 'the bundled tiny pack',
  },
  steps: {
    type: 'integer',
    value: '<n>',
    min: 1,
    help: 'Sampling steps.',
    defaultHelp: `the pack's, ${DEFAULTS.generate.steps}`,
  },
  'tuning-steps': {
    type: 'integer',
    value: '<n>',
    min: 0,
    help: 'Tuning steps.',
    defaultHelp: `the pack's, ${DEFAULTS.personalize.steps}`,
  },
  variants: {
    type: 'string',
    value: '<list>',
    help: 'Comma-separated: full, no-tuning, no-dual-path, no-hypernetwork.',
    defaultHelp: 'all',
  },
  token: {
    type: 'string',
    value: '<word>',
    help: 'Placeholder in the prompts ("{}" works too).',
    defaultHelp: `the pack's, ${DEFAULTS.personalize.placeholder}`,
  },
  guidance: {
    type: 'number',
    value: '<x>',
    help: 'Classifier-free guidance scale.',
    defaultHelp: `the pack's, ${DEFAULTS.generate.guidance}`,
  },
  sampler: {
    type: 'string',
    value: '<name>',
    choices: SAMPLERS,
    help: `${SAMPLERS.join(' | ')}.`,
    defaultHelp: `the pack's, ${DEFAULTS.generate.sampler}`,
  },
  seed: {
    type: 'integer',
    value: '<n>',
    min: 0,
    help: 'Seed of tuning and sampling.',
    default: DEFAULTS.personalize.seed,
  },
  out: { type: 'string', value: '<file.md>', help: 'Markdown table.' },
  json: { type: 'string', value: '<file>', help: 'The full report as JSON.' },
} as const;
