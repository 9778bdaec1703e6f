// Unit tests of the mini-program (docs/miniprogram.md): jest + miniprogram-simulate in jsdom.
// Run from the repository root: npx jest --config miniprogram/jest.config.js (npm run test:miniprogram).
module.exports = {
  rootDir: __dirname,
  testEnvironment: 'jsdom',
  testMatch: ['<rootDir>/__tests__/**/*.test.js'],
  clearMocks: true
}
