// The store's starting values come from the one defaults table, and choosing a concept to
// generate with brings the concept's stored blend, as the CLI does.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { DEFAULTS } from '../../domain/defaults.ts';
import type { ConceptRecord, ConceptSummary } from '../../storage/concept-record.ts';
import type { ConceptLibrary } from '../../storage/library-db.ts';
import { connection } from './library-access.ts';
import { useAppStore } from './index.ts';

const pristine = useAppStore.getState();
afterEach(() => {
  useAppStore.setState(pristine, true);
  connection.library = null;
});

const summary = (id: string, placeholder: string): ConceptSummary => ({
  id,
  name: `${id} (${placeholder})`,
  placeholder,
  nearestWords: [],
  packId: 'tiny',
  packHash: 'h'.repeat(64),
  createdAt: 0,
  updatedAt: 0,
  thumbnail: new Uint8Array(0),
  tensorBytes: 0,
});

/**
 * Only the library's `get`, answering with records that differ in their blend: the store's
 * logic under test is which blend it puts in the form, not how IndexedDB stores it (that is
 * storage/library-db's, tested in the browser).
 */
function libraryWithBlends(blends: Record<string, number>): void {
  const get = (id: string) => Promise.resolve({ id, blend: blends[id] } as ConceptRecord);
  connection.library = { get } as unknown as ConceptLibrary;
}

describe('store defaults', () => {
  it('the generate and personalize forms start from DEFAULTS', () => {
    const { generate: g, personalize: p } = useAppStore.getState();
    const d = DEFAULTS.generate;
    expect([g.steps, g.guidance, g.sampler, g.blend, g.batch, g.seed]).toEqual([
      d.steps,
      d.guidance,
      d.sampler,
      d.generateBlend,
      d.batch,
      d.seed,
    ]);
    expect([g.negativePrompt, g.runtime, g.rng]).toEqual([d.negativePrompt, d.runtime, d.rng]);
    expect([p.placeholder, p.steps, p.seed, p.totalSteps]).toEqual([
      DEFAULTS.personalize.placeholder,
      DEFAULTS.personalize.steps,
      DEFAULTS.personalize.seed,
      DEFAULTS.personalize.steps,
    ]);
    expect(g.prompt).toContain(DEFAULTS.personalize.placeholder);
  });
});

describe('choosing a concept to generate with', () => {
  it('“use concept” takes the concept’s stored blend and puts its word in the prompt', async () => {
    libraryWithBlends({ lora: 1, mug: 0.4 });
    useAppStore.setState({
      library: { ...pristine.library, concepts: [summary('lora', '<lora>'), summary('mug', '<mug>')] },
    });
    useAppStore.getState().useConcept('lora');
    await vi.waitFor(() => expect(useAppStore.getState().generate.blend).toBe(1));
    expect(useAppStore.getState().step).toBe('generate');
    expect(useAppStore.getState().generate.conceptId).toBe('lora');
    expect(useAppStore.getState().generate.prompt).toBe('a photo of <lora>');

    // The Concept menu does the same; "None" keeps the blend that is set.
    useAppStore.getState().setGenerate('conceptId', 'mug');
    await vi.waitFor(() => expect(useAppStore.getState().generate.blend).toBe(0.4));
    useAppStore.getState().setGenerate('conceptId', null);
    await Promise.resolve();
    expect(useAppStore.getState().generate).toMatchObject({ conceptId: null, blend: 0.4 });
  });

  it('a blend moved after choosing stays', async () => {
    libraryWithBlends({ mug: 0.4 });
    useAppStore.getState().setGenerate('conceptId', 'mug');
    await vi.waitFor(() => expect(useAppStore.getState().generate.blend).toBe(0.4));
    useAppStore.getState().setGenerate('blend', 0.7);
    await Promise.resolve();
    expect(useAppStore.getState().generate.blend).toBe(0.7);
  });
});
