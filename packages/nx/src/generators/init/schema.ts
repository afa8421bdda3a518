export interface InitGeneratorSchema {
  /** Name of the inferred target. */
  targetName?: string;
  /** Registry that image repositories default to. */
  registry?: string;
  skipFormat?: boolean;
}
