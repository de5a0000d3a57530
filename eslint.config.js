/**
 * One lint setup for the whole workspace (STYLE.md). Type-aware
 * (typescript-eslint's recommendedTypeChecked, each file checked against the
 * tsconfig.json nearest to it), with the promise rules as errors: in a queue
 * system an unawaited promise is a lost task or a swallowed failure.
 * Formatting is Prettier's job (`prettier --check .`), not ESLint's.
 */
import js from '@eslint/js';
import { defineConfig, globalIgnores } from 'eslint/config';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default defineConfig(
  globalIgnores(['**/dist/', '**/node_modules/', '**/coverage/', 'bench/.work/']),

  js.configs.recommended,
  tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      ecmaVersion: 2023,
      sourceType: 'module',
      globals: globals.node,
      parserOptions: {
        projectService: {
          // Root-level TS files that no package tsconfig.json includes.
          allowDefaultProject: ['*.ts'],
          defaultProject: 'tsconfig.base.json',
        },
        tsconfigRootDir: import.meta.dirname,
      },
    },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/no-unused-vars': [
        'error',
        {
          args: 'after-used',
          argsIgnorePattern: '^_',
          varsIgnorePattern: '^_',
          caughtErrorsIgnorePattern: '^_',
          destructuredArrayIgnorePattern: '^_',
          ignoreRestSiblings: true,
        },
      ],
      // Pragmatic relaxations of recommendedTypeChecked:
      // Fastify plugins and handlers are async by contract even when they do not await.
      '@typescript-eslint/require-await': 'off',
      // `${count}` and `${error}` in log messages and errors are intended.
      '@typescript-eslint/restrict-template-expressions': [
        'error',
        { allowNumber: true, allowBoolean: true, allowNullish: true, allowAny: false, allowNever: true },
      ],
      // Throwing or rejecting with a non-Error is still wrong, but `.catch(() => undefined)` on purpose is fine.
      '@typescript-eslint/prefer-promise-reject-errors': 'error',
    },
  },

  {
    // Tests poke at parsed JSON bodies and mocks: unsafe-any and unbound-method rules
    // cost more than they catch there. The promise rules stay on.
    files: ['**/test/**/*.ts', '**/*.test.ts'],
    rules: {
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/unbound-method': 'off',
      '@typescript-eslint/no-non-null-assertion': 'off',
    },
  },

  {
    // Plain JS (this file, scripts): no type information to lint against.
    files: ['**/*.{js,mjs,cjs}'],
    extends: [tseslint.configs.disableTypeChecked],
  },
);
