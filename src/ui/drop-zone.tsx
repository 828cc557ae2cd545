import { useState, type ReactNode } from 'react';

interface DropZoneProps {
  /** Id of the file input inside, so the zone's label points at it. */
  inputId: string;
  label: ReactNode;
  accept: string;
  multiple?: boolean;
  testId: string;
  onFiles(files: File[]): void;
}

/**
 * A file input with a large drop target around it. The input stays a real, focusable,
 * labelled control (keyboard and screen-reader users pick files with it); dropping files
 * anywhere on the zone does the same.
 */
export function DropZone({ inputId, label, accept, multiple = false, testId, onFiles }: DropZoneProps) {
  // Only the hover highlight lives here: it is how the zone looks, not application state.
  const [over, setOver] = useState(false);
  return (
    <div
      className={`drop-zone${over ? ' drop-over' : ''}`}
      data-testid={testId}
      onDragOver={(e) => {
        if (![...e.dataTransfer.types].includes('Files')) return;
        e.preventDefault();
        e.dataTransfer.dropEffect = 'copy';
        setOver(true);
      }}
      onDragLeave={() => setOver(false)}
      onDrop={(e) => {
        e.preventDefault();
        setOver(false);
        const files = [...e.dataTransfer.files];
        if (files.length) onFiles(multiple ? files : files.slice(0, 1));
      }}
    >
      <label htmlFor={inputId}>{label}</label>
      <input
        id={inputId}
        type="file"
        accept={accept}
        multiple={multiple}
        onChange={(e) => {
          const files = [...(e.target.files ?? [])];
          // Clearing lets the same file be chosen again after fixing it.
          e.target.value = '';
          if (files.length) onFiles(files);
        }}
      />
    </div>
  );
}
