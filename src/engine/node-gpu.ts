// Node only: WebGPU through the `webgpu` package (Dawn) on a Vulkan driver. With no GPU the
// driver is software: Mesa ≥ 25 lavapipe (fast, has shader-f16) when installed, otherwise
// the SwiftShader that Debian's chromium package ships. LIKENESS_VULKAN=swiftshader|lavapipe
// or an explicit VK_ICD_FILENAMES / VK_DRIVER_FILES overrides the choice.
import { existsSync, mkdirSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const LAVAPIPE = '/usr/share/vulkan/icd.d/lvp_icd.json';
const SWIFTSHADER = '/usr/lib/chromium/vk_swiftshader_icd.json';

function chooseVulkanDriver(): void {
  const env = process.env;
  if (env.VK_ICD_FILENAMES || env.VK_DRIVER_FILES) return;
  const wanted = env.LIKENESS_VULKAN;
  if (wanted === 'swiftshader' && existsSync(SWIFTSHADER)) env.VK_ICD_FILENAMES = SWIFTSHADER;
  else if (wanted === 'lavapipe' && existsSync(LAVAPIPE)) env.VK_ICD_FILENAMES = LAVAPIPE;
  else if (!wanted && existsSync(LAVAPIPE)) env.VK_ICD_FILENAMES = LAVAPIPE;
  else if (!wanted && existsSync(SWIFTSHADER)) env.VK_ICD_FILENAMES = SWIFTSHADER;
  // else: leave the Vulkan loader to find a real GPU driver.
}

let cached: Promise<GPU> | null = null;

export function nodeGpu(): Promise<GPU> {
  cached ??= (async () => {
    chooseVulkanDriver();
    if (!process.env.XDG_RUNTIME_DIR) {
      const dir = join(tmpdir(), `likeness-xdg-${process.getuid?.() ?? 0}`);
      mkdirSync(dir, { recursive: true });
      chmodSync(dir, 0o700);
      process.env.XDG_RUNTIME_DIR = dir;
    }
    let mod: typeof import('webgpu');
    try {
      mod = await import('webgpu');
    } catch (e) {
      throw new Error(`the 'webgpu' package could not be loaded (npm install webgpu): ${String(e)}`, { cause: e });
    }
    Object.assign(globalThis, mod.globals);
    return mod.create([]);
  })();
  return cached;
}
