// The typed errors a surface shows a person (message, code, fix), so surfaces need not reach into domain/.
export { clause, ForgeError, InvalidInputError } from '../domain/errors.ts';
