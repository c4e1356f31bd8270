// CSS imports are bundled by esbuild into public/build/app.css.
declare module '*.css';
