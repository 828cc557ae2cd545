// Which step of the app is on screen.
import { STEP_LABELS } from '../copy.ts';
import type { Slice } from './app-state.ts';

export type StepId = 'pack' | 'photo' | 'personalize' | 'generate' | 'library';

/** The steps in the order the app walks them. */
export const STEPS: readonly { id: StepId; label: string }[] = (
  ['pack', 'photo', 'personalize', 'generate', 'library'] as const
).map((id) => ({ id, label: STEP_LABELS[id] }));

export interface NavigationSlice {
  step: StepId;
  goTo(step: StepId): void;
}

export const createNavigationSlice: Slice<NavigationSlice> = (set) => ({
  step: 'pack',
  goTo(step) {
    set({ step });
  },
});
