/**
 * The public API as TypeScript sees it: one program over src/index.ts, and what each exported
 * function takes and returns. Lets tests ask which fields an options type has and whether each
 * carries a doc comment, without keeping lists by hand.
 */
import path from 'node:path';
import ts from 'typescript';
import { REPO_ROOT } from '../../helpers/busybox.ts';

export interface ApiModel {
  checker: ts.TypeChecker;
  exports: Map<string, ts.Symbol>;
  /** Properties (inherited ones included) of an exported interface or type alias. */
  properties(typeName: string): ts.Symbol[];
  /** The doc comment of a symbol, as plain text ('' when it has none). */
  doc(symbol: ts.Symbol): string;
  /** Names of the declared types an exported function's parameters and (awaited) result use. */
  signatureTypes(functionName: string): string[];
}

export function loadApi(): ApiModel {
  const entry = path.join(REPO_ROOT, 'src', 'index.ts');
  const config = ts.getParsedCommandLineOfConfigFile(path.join(REPO_ROOT, 'tsconfig.json'), {}, { ...ts.sys, onUnRecoverableConfigFileDiagnostic: () => undefined });
  const program = ts.createProgram([entry], { ...config!.options, noEmit: true });
  const checker = program.getTypeChecker();
  const moduleSymbol = checker.getSymbolAtLocation(program.getSourceFile(entry)!)!;
  const exports = new Map(checker.getExportsOfModule(moduleSymbol).map((s) => [s.name, s]));
  const resolve = (s: ts.Symbol): ts.Symbol => (s.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(s) : s);
  const typeOf = (name: string): ts.Type => {
    const symbol = exports.get(name);
    if (!symbol) throw new Error(`${name} is not exported from src/index.ts`);
    return checker.getDeclaredTypeOfSymbol(resolve(symbol));
  };
  const named = (type: ts.Type): string[] => {
    if (type.isUnion() || type.isIntersection()) return type.types.flatMap(named);
    const symbol = type.aliasSymbol ?? type.getSymbol();
    if (!symbol || symbol.name === '__type' || symbol.name === '__object') return [];
    if (symbol.name === 'Promise') return named(checker.getTypeArguments(type as ts.TypeReference)[0]!);
    const file = symbol.declarations?.[0]?.getSourceFile().fileName ?? '';
    return file.startsWith(path.join(REPO_ROOT, 'src')) ? [symbol.name] : [];
  };
  return {
    checker,
    exports,
    properties: (name) => checker.getPropertiesOfType(typeOf(name)),
    doc: (symbol) => ts.displayPartsToString(symbol.getDocumentationComment(checker)).trim(),
    signatureTypes: (name) => {
      const fn = resolve(exports.get(name)!);
      const out = new Set<string>();
      for (const sig of checker.getTypeOfSymbol(fn).getCallSignatures()) {
        for (const p of sig.getParameters()) for (const n of named(checker.getTypeOfSymbol(p))) out.add(n);
        for (const n of named(sig.getReturnType())) out.add(n);
      }
      return [...out];
    },
  };
}
