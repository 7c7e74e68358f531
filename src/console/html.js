/**
 * The console's view helpers: preact's `h` bound to htm, so components are written as
 * tagged template literals that run as they are (no JSX, no build step). The bare
 * specifiers resolve through the page's import map to installed npm packages
 * (src/http/console-routes.ts).
 */
import { h, render, Fragment } from 'preact';
import htm from 'htm';

export { render, Fragment };
export { useState, useEffect, useRef, useCallback, useMemo } from 'preact/hooks';
export const html = htm.bind(h);
